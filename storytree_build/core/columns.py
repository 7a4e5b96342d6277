"""Column names of the original schema that every store adapter needs, without the document models (a no-op build
reads records, never a story document)."""

DOCUMENT_COLUMNS = ("story_constitution", "visual_design_document", "audio_design_document", "visual_reference_package")
SHOT_PATH_COLUMNS = ("key_frame_image_path", "audio_file_path", "video_file_path")
