"""The library the marketcast functions share: schemas, preprocessing, codecs, model store."""
