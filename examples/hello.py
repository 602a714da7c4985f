"""The smallest WSGI app: what the README's demo serves."""


def application(environ, start_response):
    body = b"Hello from gunicorn, supervised by gunicorn-launcher\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = application
