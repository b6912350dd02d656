"""Development tools, apart from the product: the bundled Pixazo gateway emulator, the
chaos run and the benchmarks, with their management commands (`pixazo_emulator`, `chaos`,
`bench`, `bench_spend_report`).

    emulator/    the gateway emulator (server.py) and its stand-in image models (images.py)
    chaos.py     `manage.py chaos`: jobs through the real processes against a faulty emulator
    bench/       `make bench`: the stack under load, the yardstick views, /proc meters

The product (studio/, jobs/) never imports this package; these tools import the product.
numpy and OpenCV, which only the emulator's image models need (requirements-dev.txt),
are imported when a tool's command runs, never when the app registry or a command list
loads, so a web or worker process never holds them.
"""
