"""Providers: who generates images and videos (stub offline, gemini for real), behind two small ports."""
