# Contract: drop the column only the old version reads. It runs in the postdeploy, after every
# host serves the new version (which ignores `name`).
class RemoveNameFromBooks < ActiveRecord::Migration[6.1]
  def change
    remove_column :books, :name, :string
  end
end
