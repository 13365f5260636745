"""The text front-end: main-text extraction from a page, sentence splitting, normalization
for speech (numbers, dates, units, phones ...), chunking at jieba word boundaries, word
alignment between printed and spoken text, and the worker processes that run it.

It may import `runtime`, `config` and `errors` only: text in, text out.
"""
