"""Files in and out: atomic writes, safe unpickling, state dicts, images, videos."""
