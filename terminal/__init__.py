"""What the command line shows and how its process behaves: rendering answers, the chat, progress,
errors in one line, closed streams and the exit."""
