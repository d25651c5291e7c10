"""Training and publishing of the marketcast models; the bundled model store lives here too."""
