"""Fixtures for the text-search tests: a local server that plays recorded API responses."""

from __future__ import annotations

import pytest

from .text_mock_server import MockWebServer


@pytest.fixture
def web_server():
    server = MockWebServer()
    yield server
    server.stop()
