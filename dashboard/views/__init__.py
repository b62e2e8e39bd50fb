"""The operator dashboard's views (server-rendered pages, htmx partials where a page updates in place).

Views stay thin: they parse a form, call one service or selector, and render. The tenant always
comes from ``request.user.tenant``; every look-up is scoped to it.
"""
