"""`fleet dashboard`: a small live web page with the same information as `fleet status`."""
