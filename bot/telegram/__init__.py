"""The Telegram front end: a python-telegram-bot Application rendering the chat core's answers.

Nothing heavy is imported here: ``bot.settings`` imports ``bot.telegram.settings`` and
`quotebot --help` must stay fast.
"""
