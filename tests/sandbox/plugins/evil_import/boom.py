"""Dies while being imported: the host must refuse it with a reason and keep going."""

import os

os._exit(7)
