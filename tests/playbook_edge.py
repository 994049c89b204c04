"""Small hand-written nginx configs with one CORS fault each, plus a correct one, for the cors playbook.

One nginx serves them all: the edge on ``edge_port`` (one location per case) and, on
``app_port``, a stand-in for the app that answers CORS itself for the page's origin (as
Starlette's CORSMiddleware would), so that /two-origins/ shows the real-world cause of two Access-Control-Allow-Origin
headers: nginx and the app both answering.
"""

from __future__ import annotations

PAGE_ORIGIN = "https://app.example.com"

# The correct answer, as a snippet each location includes with one change.
GOOD_HEADERS = """
        add_header Access-Control-Allow-Origin $cors_origin always;
        add_header Access-Control-Allow-Credentials $cors_credentials always;
        add_header Access-Control-Allow-Methods "GET, POST, PUT, PATCH, DELETE, OPTIONS" always;
        add_header Access-Control-Allow-Headers "Authorization, Content-Type, X-Request-ID" always;
        add_header Access-Control-Expose-Headers "X-Request-ID" always;
        add_header Vary Origin always;
        add_header X-Request-ID $request_id always;
"""

MAPS = """
    map $http_origin $cors_origin {
        default "";
        "https://app.example.com" $http_origin;
    }
    map $http_origin $cors_credentials {
        default "";
        "https://app.example.com" "true";
    }
    map $http_origin $other_origin {
        default "";
        "https://admin.example.com" $http_origin;
    }
    map $http_origin $loose_origin {
        default "";
        "~^https://app.example.com" $http_origin;
    }
"""


def _location(
    path: str, headers: str, tail: str = 'if ($request_method = OPTIONS) { return 204; }\n        return 200 "ok\\n";'
) -> str:
    return f"""
    location {path} {{
{headers}
        {tail}
    }}"""


def edge_config(edge_port: int, app_port: int) -> tuple[str, str]:
    """(http-level maps, server blocks) for nginx_helper.http_config."""
    good = GOOD_HEADERS + "        add_header Access-Control-Max-Age 7200 always;\n"
    locations = [
        _location("/good/", good),
        _location("/no-max-age/", GOOD_HEADERS),
        _location(
            "/two-origins/",
            good,
            f"proxy_pass http://127.0.0.1:{app_port};",
        ),
        _location(
            "/wildcard-credentials/",
            good.replace("$cors_origin", '"*"').replace("$cors_credentials", '"true"'),
        ),
        _location("/refused/", good.replace("$cors_origin", "$other_origin")),
        _location(
            "/loose-regex/",
            good.replace("$cors_origin", "$loose_origin").replace("$cors_credentials", '"true"'),
        ),
        _location("/max-age-86400/", GOOD_HEADERS + "        add_header Access-Control-Max-Age 86400 always;\n"),
    ]
    app = """
    location / {
        add_header Access-Control-Allow-Origin $cors_origin always;
        add_header Access-Control-Allow-Credentials $cors_credentials always;
        add_header Access-Control-Allow-Methods "GET, POST, PUT, PATCH, DELETE, OPTIONS" always;
        add_header Access-Control-Allow-Headers "Authorization, Content-Type" always;
        add_header Access-Control-Max-Age 600 always;
        add_header Vary Origin always;
        if ($request_method = OPTIONS) { return 200 "OK"; }
        return 200 "app\\n";
    }"""
    servers = f"""
    server {{
        listen 127.0.0.1:{edge_port};
        server_name edge;
{"".join(locations)}
    }}
    server {{
        listen 127.0.0.1:{app_port};
        server_name app;
{app}
    }}
"""
    return MAPS, servers
