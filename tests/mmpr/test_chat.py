from mmpr.chat import conversation, fill_images, user_parts, with_placeholders


def test_placeholders_and_parts():
    assert with_placeholders("Q?", 2) == "<image><image>\nQ?"
    assert with_placeholders("Q?", 0) == "Q?"
    assert user_parts("Look: <image>\nWhat?", 1) == [{"type": "text", "text": "Look: "}, {"type": "image"},
                                                      {"type": "text", "text": "What?"}]
    assert user_parts("Q?", 1) == [{"type": "image"}, {"type": "text", "text": "Q?"}]


def test_conversation_with_prefix_and_engine_image_parts():
    messages = conversation("Compare <image> and <image>.", 2, prefix="The first")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == [{"type": "text", "text": "The first"}]
    filled = fill_images(messages, ["a.png", "b.png"], lambda p: {"type": "image_url", "image_url": p})
    assert [part.get("image_url") for part in filled[0]["content"] if part["type"] == "image_url"] == ["a.png",
                                                                                                       "b.png"]
