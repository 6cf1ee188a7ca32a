"""Headless Chromium for browser tests: Debian's chromium and chromium-driver, driven by Selenium.

Never a browser downloaded at run time: the binaries are /usr/bin/chromium and
/usr/bin/chromedriver, installed with apt like Dovecot when missing (root only). Each browser
starts with a fresh profile and no background traffic.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.servers import dovecot

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900")


def ensure_installed() -> None:
    """Install chromium and chromium-driver with apt if missing (root only)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("chromium/chromium-driver are missing and cannot be installed "
                           "(needs root and apt; or run .ci/setup)")
    if not dovecot._apt_updated:
        dovecot._apt("update")
        dovecot._apt_updated = True
    dovecot._apt("install", "-y", "--no-install-recommends", "chromium", "chromium-driver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError("apt-get installed chromium but /usr/bin/chromium or chromedriver is missing")


@contextmanager
def chromium(profile: Path, language: str = "en") -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in profile; quit (with its driver) afterwards."""
    ensure_installed()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--lang={language}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER),
                                                               log_output=str(profile) + ".log"))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
