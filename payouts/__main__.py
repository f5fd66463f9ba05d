from payouts.cli import main

main()
