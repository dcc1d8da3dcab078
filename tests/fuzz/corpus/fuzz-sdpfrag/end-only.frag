2a=end-of-candidates
