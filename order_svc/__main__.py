from order_svc.main import main

main()
