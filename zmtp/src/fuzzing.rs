//! Entry points for the fuzz targets and for the test that replays their corpus. Not part of the API.
