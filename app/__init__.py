"""The application layer: the `fleet` command line, the no-Docker local run, status and dashboard.

It sits above director/ and worker/, which sit above the core (fleet/); nothing below imports it.
"""
