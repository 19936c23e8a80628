"""The media the fixtures return: a 1x1 red PNG, a tenth of a second of silent WAV, embedded text."""

import base64
import io
import struct
import wave
import zlib

from mcp_types import AudioContent, EmbeddedResource, ImageContent, TextResourceContents

PNG = "image/png"
WAV = "audio/wav"


def _one_pixel_png(red: int, green: int, blue: int) -> bytes:
    """A 1x1 RGB PNG: signature, header, one compressed scanline, end."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # width, height, 8 bits, truecolour, no interlace
    scanline = bytes([0, red, green, blue])  # filter type 0, then the pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanline)) + chunk(b"IEND", b"")


def _silent_wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)  # 8-bit PCM, whose silence is 0x80
        out.setframerate(rate)
        out.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


RED_PIXEL = _one_pixel_png(255, 0, 0)
IMAGE = ImageContent(type="image", data=base64.b64encode(RED_PIXEL).decode(), mime_type=PNG)
AUDIO = AudioContent(type="audio", data=base64.b64encode(_silent_wav()).decode(), mime_type=WAV)


def embedded(uri: str, text: str, mime_type: str = "text/plain") -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime_type, text=text))
