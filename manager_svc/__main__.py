from manager_svc.main import main

main()
