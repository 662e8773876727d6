"""Bridges to other training frameworks; each lives in its own subpackage with its own extra.

- :mod:`workbench.integrations.nnunet`: nnU-Net v2 trainers for every workbench loss and the
  export of a manifest as an nnU-Net raw dataset (``pip install "workbench[nnunet]"``).
"""
