"""Appeals of rejections and auto-rejections, and what a closed brief keeps in escrow for them."""
