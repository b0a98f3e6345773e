from trainer_svc.main import main

main()
