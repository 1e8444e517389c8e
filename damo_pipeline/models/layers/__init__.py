"""Building blocks shared by backbones, necks and heads."""
from .activations import get_activation, list_activations
from .conv import ConvBNAct, ConvKXBN, ConvKXBNRELU, Focus, SPPBottleneck
from .mobile import DepthwiseConv, MobileV3Block, make_divisible
from .repconv import RepConv
from .res_block import ResConvBlock

__all__ = [
    "ConvBNAct", "ConvKXBN", "ConvKXBNRELU", "DepthwiseConv", "Focus", "MobileV3Block", "RepConv",
    "ResConvBlock", "SPPBottleneck", "get_activation", "list_activations", "make_divisible",
]
