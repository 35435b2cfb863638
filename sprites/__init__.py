"""The data-and-files layer, between the pipelines and everything that trains, scores or reports.

- :mod:`sprites.data`: the sprites data set (a ``datasets.Dataset``), read and checked from the course files, a
  ``.npz`` or the hub; where the loaders look for it;
- :mod:`sprites.image_data`: any small image set (image folder, saved or hub data set, arrays) as uint8 arrays with
  its class names, decoded once and checked;
- :mod:`sprites.download`: ``python -m sprites download [--to DIR]``, the course files from the Hugging Face Hub;
- :mod:`sprites.export`: ``python -m sprites export --to DIR``, an image set as a PNG folder of class subfolders;
- :mod:`sprites.images`: uint8 images, captioned PNG grids, GIFs of the denoising, ``.npy`` arrays;
- :mod:`sprites.errors`: ``ConfigError``, the error of a bad setting, shared by every command above.
- :mod:`sprites.cli`: the flag style of every command (underscores; the dashed spelling a hidden alias).

Files are written through :mod:`pipelines.atomic`, the project's one atomic writer: it lives in the lowest layer
because a saved pipeline folder carries the pipelines' code and must not import anything above it.
"""
