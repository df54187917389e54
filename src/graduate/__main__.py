from graduate.cli.app import main

main()
