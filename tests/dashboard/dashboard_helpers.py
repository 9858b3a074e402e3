"""Helpers of the dashboard tests (a unique module name: tests/ has its own conftest)."""
from __future__ import annotations

import httpx
from bs4 import BeautifulSoup


def make_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test")


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def csrf_of(response) -> str:
    return soup(response).find("input", attrs={"name": "csrf"})["value"]


async def login(client, key: str, next_url: str = "/"):
    page = await client.get("/login")
    return await client.post("/login", data={"api_key": key, "csrf": csrf_of(page), "next": next_url})
