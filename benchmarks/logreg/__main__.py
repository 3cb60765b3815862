from benchmarks.logreg import main

main.main()
