"""URL user-info never shows: one function for every URL storytree prints."""

from __future__ import annotations

import pytest

from storytree_build.core.redact import redact_url, scrub_userinfo
from storytree_build.objects import faults


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@abc.supabase.co", "https://***@abc.supabase.co"),
    ("https://user:p@ss@abc.supabase.co:8443/path?q=1", "https://***@abc.supabase.co:8443/path?q=1"),
    ("http://token@127.0.0.1:9/v1beta/files/f:download?alt=media", "http://***@127.0.0.1:9/v1beta/files/f:download?alt=media"),
    ("s3://bucket/prefix", "s3://bucket/prefix"),
    ("https://abc.supabase.co/a@b", "https://abc.supabase.co/a@b"),  # an '@' in the path is no user-info
    ("http://user:pw@[::1", "http://***@[::1"),  # unparsable (urlsplit raises): still scrubbed
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert faults.redact_url(url) == shown  # the objects package shows remotes with the same function


def test_scrub_userinfo_cleans_every_url_in_a_message() -> None:
    text = "cannot reach https://a:b@one.example/x and ftp://c:d@two.example (mail me@home, http://plain.example)"
    assert scrub_userinfo(text) == ("cannot reach https://***@one.example/x and ftp://***@two.example (mail me@home, "
                                    "http://plain.example)")
    assert faults.scrub(text) == scrub_userinfo(text)


def test_a_password_holding_an_at_sign_is_scrubbed_whole() -> None:
    assert scrub_userinfo("SUPABASE_URL https://user:p@ss@abc.supabase.co failed") == \
        "SUPABASE_URL https://***@abc.supabase.co failed"
    assert faults.scrub("remote s3://key:se@cret@host/bucket refused") == "remote s3://***@host/bucket refused"
