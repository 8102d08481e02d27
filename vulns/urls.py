"""Vulnerability web pages."""

urlpatterns: list = []
