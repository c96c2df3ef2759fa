"""Small shared pieces the chapters import: the Keras-cache files and plots.

Each function names the chapter that teaches what it does; a helper only
removes repetition that is not the lesson.
"""
