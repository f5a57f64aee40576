"""HTTP routes, one module per area. Handlers parse, call one function, and render."""

from litestar.enums import RequestEncodingType
from litestar.params import Body

# Handlers take a posted form as `data: Annotated[SomeForm, FORM]`.
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
