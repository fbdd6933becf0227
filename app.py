"""Start the CycleTrans app: ``python app.py --help`` for the flags (see app/main.py)."""

from app.main import main

if __name__ == "__main__":
    raise SystemExit(main())
