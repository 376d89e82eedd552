from kerasml.cli import main

main()
