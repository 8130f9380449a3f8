// excluded by .dockerignore
