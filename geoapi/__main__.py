from geoapi.cli import main

main()
