"""What the user sees and presses: the terminal view, keys and typed questions, device lists."""
