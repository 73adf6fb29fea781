from bud.cli import main

main()
