"""`python -m article_qa …` runs the `article-qa` command."""

from article_qa.cli import main

main()
