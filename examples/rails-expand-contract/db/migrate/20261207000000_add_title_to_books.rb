# Expand: the new column, filled from the old one. The old version keeps working (it never
# reads `title`), so this runs before traffic moves.
class AddTitleToBooks < ActiveRecord::Migration[6.1]
  def up
    add_column :books, :title, :string
    execute "UPDATE books SET title = name"
  end

  def down
    remove_column :books, :title
  end
end
