"""The customer portal: server-rendered pages on the HTTP door, sign-in by a mailed single-use link.

``access`` keeps links and sessions (hashed, in the store); ``guard`` applies the browser
rules (cookies, CSRF, headers); ``pages`` renders the Jinja pages; ``signin`` and
``tickets`` are the routes. Tickets are created and answered through the API's submission
path (``gateway.web.api.submit``) and read through ``gateway.views``: no ticket logic here.
"""
