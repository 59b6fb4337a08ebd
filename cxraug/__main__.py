"""``python -m cxraug`` — also what ``accelerate launch -m cxraug`` runs."""

from cxraug.cli import main

if __name__ == "__main__":
    main()
