"""Workers anywhere: the audio and the results of a job carried through an S3 bucket beside the queue."""
