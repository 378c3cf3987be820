from xlbench.cli import main

main()
