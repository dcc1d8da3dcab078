2a=candidate:nospace
