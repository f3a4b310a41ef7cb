from shelfsight.cli import main

main()
