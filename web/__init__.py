"""`article-qa serve`: the article (or a corpus: a list of its articles) on a local web page with
answers marked where they stand, in their article, and a small JSON API for scripts.

Thin like `cli.py`: every answer comes from `article_qa.qa.pipeline.ArticleQA`; this package only lays the
article out for the page (`blocks`), lists the articles served and reads each (`catalog`), keeps
the page's conversations (`service`), speaks HTTP (`app`) and runs the server (`server`). The page
itself is three static files in `web/static/`, shipped as package data: no CDN, no build step,
works offline. Starlette and uvicorn are imported only by
`article-qa serve`, so the other commands start as fast as before.
"""
