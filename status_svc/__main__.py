from status_svc.main import main

main()
