"""Music Studio's engine: everything the app does, without Streamlit."""

import contextlib
import io

# pretty_midi imports pyfluidsynth, which prints where it found the library to stdout whenever
# the CI variable is set; that line would corrupt the CLI's JSON. Import it once, quietly, here.
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(ImportError, OSError):
    import fluidsynth  # noqa: F401
