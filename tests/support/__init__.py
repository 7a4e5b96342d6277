"""Test support, loaded once: project setup, the doit runners (a subprocess, as a user runs it, and in-process for
speed), fakes of the remote services, and the Postgres + PostgREST services plugin."""
